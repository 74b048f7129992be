"""The pause lifecycle: the rules as data (model), the engine that carries them out, recovery."""
