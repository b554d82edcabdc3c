"""Base class for tests that touch gin: each test starts and ends with an empty config."""

import unittest

import gin


class GinTestCase(unittest.TestCase):
    def setUp(self):
        super().setUp()
        gin.clear_config()

    def tearDown(self):
        gin.clear_config()
        super().tearDown()
