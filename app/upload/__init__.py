"""The upload flow of the original Pitching engine: receive a finished recording, analyse it in
the background, answer feedback polls from stored state."""
