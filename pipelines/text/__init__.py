"""Text rules: how actions are normalised, and the agent and critic prompts built from states."""
