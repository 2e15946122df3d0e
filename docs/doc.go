// Package docs holds the user documentation (Markdown); its test checks
// that the README stays short and that every link resolves inside the
// repository.
package docs
