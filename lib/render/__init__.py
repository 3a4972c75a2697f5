"""Seeing the face: frames, videos with audio, notebook players, the ``render``/``speak`` CLI.

Modules: ``face`` (drawing one frame from blendshape weights), ``video`` (MP4
with audio via ffmpeg, GIF fallback, side-by-side panels), ``player``
(ipywidgets player and static frame strips), ``cli`` (``python -m lib render|speak``).
"""
from .face import render_frame
from .video import render_side_by_side, render_video
from .player import frame_strip, player, show_player_or_strip
from .cli import cli_main

__all__ = ["render_frame", "render_video", "render_side_by_side", "player", "frame_strip",
           "show_player_or_strip", "cli_main"]
