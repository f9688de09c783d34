"""One module per feature, each with `register(router)`: the commands, buttons, flows and
listeners people use, and the cards they see."""
