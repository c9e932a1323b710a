"""Developer tools that are not part of the deploy unit: the emulator stack."""
