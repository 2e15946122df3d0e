module github.com/nix-cached/cached

go 1.26

require (
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/mattn/go-sqlite3 v1.14.53 // indirect
	github.com/ulikunitz/xz v0.5.17 // indirect
)
