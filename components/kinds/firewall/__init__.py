"""Firewall: a node-level nftables table of ringzero\x27s own (kinds/firewall)."""
