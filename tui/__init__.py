"""imgtui: the Textual dashboard and the one-shot ``imgtui submit`` client."""
