"""The AppArmor profile kind: spec, render, checks, kind (plan)."""
