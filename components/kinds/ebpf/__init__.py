"""The eBPF agent kind: spec, render, checks, kind (plan)."""
