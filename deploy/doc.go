// Package deploy holds no code: its tests check the deployment files of
// cached. They run the Dockerfile's build command on a build context
// filtered by .dockerignore, decode the kustomize output of
// deploy/kubernetes strictly into Kubernetes types and check it against the
// Dockerfile and the flags of the binary, run that binary as the base
// Deployment's pod would, and drive the proxy-container recipe with the
// real Nix client.
package deploy
