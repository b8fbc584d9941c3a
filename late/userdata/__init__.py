"""Cloud-init compatible user-data engine.

Entry point: ``bootseed.late.userdata.engine.process(raw, ...) -> UserDataResult``.
"""
