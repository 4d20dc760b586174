// Command pulumi-tfgen-libvirt writes the provider's Pulumi schema
// (`pulumi-tfgen-libvirt schema --out DIR`); build.sh embeds it in pulumi-resource-libvirt.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"

	provider "ringzero.local/tools/pulumi/libvirt"
	"ringzero.local/tools/pulumi/libvirt/version"
)

func main() {
	tfgen.Main("libvirt", version.Version, provider.Provider())
}
