"""The grid signal part: an OpenADR 2.0b VEN (openleadr) and its DR event schedule."""
