"""Sub-commands of ``dse``: each module defines ``register(subparsers)`` and imports heavy
dependencies only inside its handlers, so ``dse --help`` stays fast."""
