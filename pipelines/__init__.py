"""Pure pipeline steps (no Prefect): sources, states, policies, sampling, filters, store, publishing."""
