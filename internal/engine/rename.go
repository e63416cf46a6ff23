package engine

// Rename gives the container ref a new name. The new name is reserved
// before the old one is released, so the container is never nameless; a
// name in use is an ErrConflict, and the old name is free at once. A
// running container can be renamed: the name is only the record's.
func (e *Engine) Rename(ref, newName string) error {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return err
	}
	return e.Containers.Rename(rec.ID, newName)
}
