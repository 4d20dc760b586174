"""ringzero's reference stack: stack config -> specs -> hosts, VMs and kernel policies.

The whole declaration lives in Pulumi.<stack>.yaml under the `ringzero:` namespace
(hosts, images, vms, nodes); see README.md. Bad values fail `pulumi preview` with the
resource, field, value and what is allowed.
"""

from pathlib import Path

import pulumi

from ringzero.stack import allocations, deploy, topology_from_config, waivers_from_config

config = pulumi.Config("ringzero")
topology = topology_from_config(config, base_dir=Path(__file__).parent)
# ringzero:compliance (default true): prove the policies inside `pulumi up`;
# ringzero:enforce (default true): a failed check fails the update;
# ringzero:waivers: a waivers file (path) or the list itself (control, hosts, reason, expires).
deployed = deploy(topology, compliance=config.get_bool("compliance") is not False,
                  enforce_compliance=config.get_bool("enforce") is not False,
                  waivers=waivers_from_config(config.get("waivers")))

pulumi.export("vms", deployed.vm_outputs())
pulumi.export("allocations", allocations(topology))
pulumi.export("manifest", deployed.manifest_json())
pulumi.export("compliance", deployed.compliance_outputs())
pulumi.export("policies", deployed.policy_outputs())
pulumi.export("access_public_key", deployed.access_key.public_key)
pulumi.export("access_private_key", deployed.access_key.private_key)
