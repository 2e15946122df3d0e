package memory

import (
	"testing"

	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Store { return New() })
}
