"""The Landlock kind: spec, expect (the rights per ABI), render, launcher, checks, kind (plan)."""
