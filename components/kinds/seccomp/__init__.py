"""The seccomp profile kind: spec, render, checks, kind (plan)."""
