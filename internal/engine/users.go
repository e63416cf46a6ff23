package engine

import (
	"bufio"
	"io"
	"strconv"
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
)

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

func parsePasswd(r io.Reader) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		e := passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid)}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out
}

func parseGroup(r io.Reader) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		g := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out
}

// resolveUser turns -u (or the image's User) into ids, as Docker does:
// "name", "uid", "name:group", "uid:gid"; a numeric uid needs no passwd
// entry (gid then defaults to 0); supplementary groups come from /etc/group.
// passwd and group may be nil when the image has no such file.
func resolveUser(spec string, passwd, group io.Reader) (resolvedUser, error) {
	var users []passwdEntry
	var groups []groupEntry
	if passwd != nil {
		users = parsePasswd(passwd)
	}
	if group != nil {
		groups = parseGroup(group)
	}
	u := resolvedUser{Home: "/root"}
	if spec == "" {
		spec = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		return u, errdefs.Invalidf("--user %q: no user given", spec)
	}
	var name string
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID, u.GID, u.Home = uint32(n), 0, "/"
		for _, e := range users {
			if e.uid == u.UID {
				u.GID, u.Home, name = e.gid, e.home, e.name
				break
			}
		}
	} else {
		found := false
		for _, e := range users {
			if e.name == userPart {
				u.UID, u.GID, u.Home, name = e.uid, e.gid, e.home, e.name
				found = true
				break
			}
		}
		if !found {
			return u, errdefs.Invalidf("--user %q: unable to find user %s: no matching entries in passwd file", spec, userPart)
		}
	}
	if hasGroup {
		if groupPart == "" {
			return u, errdefs.Invalidf("--user %q: empty group", spec)
		}
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(n)
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID = g.gid
					found = true
					break
				}
			}
			if !found {
				return u, errdefs.Invalidf("--user %q: unable to find group %s: no matching entries in group file", spec, groupPart)
			}
		}
	}
	// Like initgroups(3): the primary group, then every group that lists
	// the user.
	u.Groups = []uint32{u.GID}
	if name != "" && !hasGroup {
		for _, g := range groups {
			if g.gid == u.GID {
				continue
			}
			for _, m := range g.members {
				if m == name {
					u.Groups = append(u.Groups, g.gid)
				}
			}
		}
	}
	if u.Home == "" {
		u.Home = "/"
	}
	return u, nil
}
