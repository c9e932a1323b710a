"""Story, image and video generators behind one interface, chosen by settings."""
