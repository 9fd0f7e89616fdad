"""Voice of the member: review language, sentences, sentiment, aspects and their summaries."""
