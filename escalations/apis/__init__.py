"""JSON API views for escalations, one module per capability."""
