"""Data from outside the built-in corpus: Live Link Face takes, MediaPipe video
labelling, video import, rig mapping and TTS augmentation of any corpus."""
