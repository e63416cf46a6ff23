package store

// Word lists for generated container names ("adjective_surname"), in the
// spirit of Docker's: friendly adjectives and people who shaped computing,
// mathematics and science.
var adjectives = [...]string{
	"agile", "amazing", "bold", "boring", "brave", "bright", "calm", "careful",
	"cheerful", "clever", "cool", "curious", "daring", "eager", "elegant",
	"epic", "fervent", "focused", "friendly", "gallant", "gentle", "happy",
	"honest", "hopeful", "humble", "jolly", "keen", "kind", "lucid", "lucky",
	"merry", "modest", "nifty", "noble", "patient", "peaceful", "playful",
	"proud", "quick", "quiet", "relaxed", "serene", "sharp", "steady",
	"sturdy", "sunny", "swift", "tender", "tidy", "vibrant", "wise", "witty",
	"zealous",
}

var surnames = [...]string{
	"agnesi", "babbage", "backus", "bardeen", "bell", "boole", "cerf",
	"curie", "darwin", "dijkstra", "einstein", "euler", "faraday", "fermat",
	"feynman", "franklin", "galileo", "gauss", "goldberg", "hamilton",
	"hawking", "hopper", "johnson", "kepler", "knuth", "kowalevski",
	"lamarr", "lamport", "leakey", "liskov", "lovelace", "maxwell",
	"mccarthy", "meitner", "mirzakhani", "newton", "noether", "pascal",
	"perlman", "ramanujan", "ritchie", "shannon", "somerville", "tesla",
	"thompson", "torvalds", "turing", "wilson", "wozniak", "yalow",
}
