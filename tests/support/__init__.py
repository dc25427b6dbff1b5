"""What tests share and are not tests: factories of records and datasets, the tiny model, and the
loopback servers (a Hub-compatible server and an OpenAI-compatible one)."""
