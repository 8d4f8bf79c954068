"""Appearance from DNA: the published HIrisPlex models of eye colour, hair colour and hair shade."""
