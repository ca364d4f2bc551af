"""Demo tenant constants; the generator lives here too (see seed_demo)."""

DEMO_ORG = "demo"
DEMO_PASSWORD = "reviewapp-demo"  # noqa: S105 - printed on purpose: local demo logins
DEMO_USERS = [("annotator", "annotator"), ("approver", "approver"), ("engineer", "engineer"), ("admin", "admin")]
