"""The workload service kind: spec, render, checks, kind (plan)."""
