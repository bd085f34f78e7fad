"""TensorFlow's C++ start-up writes to stderr before any log setting applies ("Could not find cuda
drivers..."); it is not for users, whose stderr carries whyzero's progress and one-line errors."""

import os


def import_tensorflow_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf  # the one place TensorFlow is first imported, with stderr silenced

        tf.config.list_physical_devices()  # device start-up logs here too
        tf.get_logger().setLevel("ERROR")
        return tf
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
