// Package registry moves images between a content store and OCI
// registries with containerd's resolver: pull, push and login, with
// credentials from the docker configuration and its credential helpers,
// verified TLS by default, and plain HTTP only when asked.
package registry
