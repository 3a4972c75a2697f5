"""t2a-toolkit: audio-driven talking faces with TTS data augmentation and soft-DTW."""
__version__ = "0.1.0"
