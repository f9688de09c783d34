"""What features call out to: the optional model, the prompt library, signed dashboard
links."""
