// Package version holds the provider version, set by build.sh with
// -ldflags "-X ringzero.local/tools/pulumi/libvirt/version.Version=...".
package version

// Version is the version the provider reports to the engine.
var Version = "0.0.0-dev"
