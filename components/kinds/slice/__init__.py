"""The cgroup v2 slice kind: spec, expect (the one field table), render, checks, kind (plan)."""
