# The sample project's suite runs in a virtualenv of its own (test_sample_project.py), as an outside project's
# would: collected here, it would find neither its package nor the plugin's fixtures (disabled in this suite).
collect_ignore = ["sample_project"]
