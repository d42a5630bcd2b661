"""The study service: a FastAPI application over the DSE engine."""
