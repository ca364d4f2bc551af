"""Browser pages for escalations, one module per capability."""
