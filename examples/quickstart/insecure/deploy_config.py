"""Deployment settings. The token below is a planted FAKE credential: it
exists so that `sluice run sluice-insecure.yaml` shows the scan gate
blocking a committed secret."""

GITHUB_TOKEN = "ghp_R8fKq2LmZx4Tn7Wv1Bc9Dh3Jp6Ys0Ue5Ai2Q"
REGION = "eu-central-1"
