"""The front door's checks: a composed config or a checkpoint's stored recipe, checked once into the
parts the model is built from (recipe.py: `Recipe.check`), ogan_pl's own sections by their schema
(schema.py), a whole training config (checks.py: `check_training`), and the settings that follow
the data (data_settings.py). Sits above the parts it checks: models, data and metrics.
"""
