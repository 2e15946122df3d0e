module github.com/nix-cached/cached

go 1.26

require (
	github.com/go-chi/chi/v5 v5.5.0
	github.com/klauspost/compress v1.20.3
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/ulikunitz/xz v0.5.17
)
