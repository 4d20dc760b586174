// Package provider maps terraform-provider-libvirt onto the Pulumi package "libvirt".
//
// Why it exists: the Go module github.com/pulumi/pulumi-libvirt/provider is not served by
// the Go module proxy our machines reach, but the provider it wraps
// (github.com/dmacvicar/terraform-provider-libvirt) and pulumi-terraform-bridge are. This
// package is our own mapping, with the resource and function tokens of the
// pulumi-libvirt 0.5.4 Python SDK, so that `import pulumi_libvirt` programs run on it.
package provider

import (
	"github.com/dmacvicar/terraform-provider-libvirt/libvirt"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"

	"ringzero.local/tools/pulumi/libvirt/version"
)

const pkg = "libvirt"

func resource(name string) *tfbridge.ResourceInfo {
	// Tokens as in the pulumi_libvirt SDK: libvirt:index/<camelName>:<Name>.
	return &tfbridge.ResourceInfo{Tok: tfbridge.MakeResource(pkg, "index", name)}
}

func function(name string) *tfbridge.DataSourceInfo {
	return &tfbridge.DataSourceInfo{Tok: tfbridge.MakeDataSource(pkg, "index", name)}
}

// Provider returns the bridge's description of the libvirt provider.
func Provider() tfbridge.ProviderInfo {
	prov := tfbridge.ProviderInfo{
		P:           shimv2.NewProvider(connectOnFirstUse(libvirt.Provider())),
		Name:        pkg,
		Version:     version.Version,
		Description: "libvirt resources for ringzero (terraform-provider-libvirt through pulumi-terraform-bridge).",
		License:     "Apache-2.0",
		GitHubOrg:   "dmacvicar",
		Config: map[string]*tfbridge.SchemaInfo{
			"uri": {Default: &tfbridge.DefaultInfo{EnvVars: []string{"LIBVIRT_DEFAULT_URI"}}},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			"libvirt_cloudinit_disk": resource("CloudInitDisk"),
			"libvirt_domain":         resource("Domain"),
			"libvirt_ignition":       resource("Ignition"),
			"libvirt_network":        resource("Network"),
			"libvirt_pool":           resource("Pool"),
			"libvirt_volume":         resource("Volume"),
		},
		DataSources: map[string]*tfbridge.DataSourceInfo{
			"libvirt_network_dns_host_template":        function("getNetworkDnsHostTemplate"),
			"libvirt_network_dns_srv_template":         function("getNetworkDnsSrvTemplate"),
			"libvirt_network_dnsmasq_options_template": function("getNetworkDnsmasqOptionsTemplate"),
		},
	}
	prov.SetAutonaming(255, "-")
	return prov
}
