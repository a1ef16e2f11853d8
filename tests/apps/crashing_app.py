"""A user's app that dies while starting, the way a missing model file makes it die."""

raise SystemExit("crashing_app: cannot load the model")
