#!/usr/bin/env python3
"""botocore's RDS IAM token at a frozen time: the differential reference for pgwait's signer.

Usage: rds_token.py HOST PORT USER REGION EPOCH_SECONDS
Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the optional
AWS_SESSION_TOKEN; nothing is read from files and nothing is sent anywhere.
"""

import datetime
import os
import sys
from unittest import mock

import botocore.auth
import botocore.session


def token(host, port, user, region, epoch):
    session = botocore.session.Session()
    # No profile or config file may change the answer: only the three variables count.
    session.set_credentials(
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        os.environ.get("AWS_SESSION_TOKEN") or None,
    )
    client = session.create_client("rds", region_name=region)
    frozen = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)
    # botocore.auth takes the signing time from get_current_datetime() (older releases: from
    # datetime.datetime.utcnow()); freeze it there only.
    if hasattr(botocore.auth, "get_current_datetime"):
        freeze = mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen)
    else:
        fake = mock.Mock(wraps=datetime.datetime)
        fake.utcnow.return_value = frozen
        freeze = mock.patch.object(botocore.auth.datetime, "datetime", fake)
    with freeze:
        return client.generate_db_auth_token(host, port, user, Region=region)


def main(argv):
    if len(argv) != 6:
        sys.exit(__doc__)
    _, host, port, user, region, epoch = argv
    print(token(host, int(port), user, region, int(epoch)))


if __name__ == "__main__":
    main(sys.argv)
