"""Sign-in against a Cognito user pool on a moto server: InitiateAuth with the password, the ID token
verified against the pool's keys (issuer, audience, signature), the highest group as the role."""

from __future__ import annotations

import base64
import json

import pytest

from rfmlake.app.auth import CognitoUsers, User
from rfmlake.errors import ConfigError


def test_cognito_sign_in_verifies_the_id_token_and_maps_groups(aws, moto_endpoint_url: str) -> None:  # noqa: ANN001
    cognito = aws.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="app")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(UserPoolId=pool, ClientName="app",
                                             ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]
    other = cognito.create_user_pool_client(UserPoolId=pool, ClientName="other",
                                            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]
    for user, groups in (("mia", ["analyst", "marketer"]), ("nogroup", [])):
        cognito.admin_create_user(UserPoolId=pool, Username=user, TemporaryPassword="Temporary-1")
        cognito.admin_set_user_password(UserPoolId=pool, Username=user, Password="Real-pass-2026", Permanent=True)
        for group in groups:
            if group not in {g["GroupName"] for g in cognito.list_groups(UserPoolId=pool)["Groups"]}:
                cognito.create_group(GroupName=group, UserPoolId=pool)
            cognito.admin_add_user_to_group(UserPoolId=pool, Username=user, GroupName=group)
    users = CognitoUsers(pool, client["ClientId"], boto3_session=aws, endpoint_url=moto_endpoint_url)
    assert users.sign_in("mia", "Real-pass-2026") == User("mia", "marketer")
    assert users.sign_in("mia", "wrong-pass-2026") is None
    assert users.sign_in("ghost", "Real-pass-2026") is None
    assert users.sign_in("nogroup", "Real-pass-2026") is None  # signed in to Cognito, but no role in the app
    # a token of another client of the pool is not one for this app
    token = cognito.initiate_auth(AuthFlow="USER_PASSWORD_AUTH", ClientId=other["ClientId"],
                                  AuthParameters={"USERNAME": "mia", "PASSWORD": "Real-pass-2026"})
    id_token = token["AuthenticationResult"]["IdToken"]
    assert users.verify(id_token) is None
    assert CognitoUsers(pool, other["ClientId"], boto3_session=aws, endpoint_url=moto_endpoint_url).verify(id_token)
    head, body, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "cognito:groups": ["admin"]}).encode()).decode().rstrip("=")
    assert CognitoUsers(pool, other["ClientId"], boto3_session=aws,
                        endpoint_url=moto_endpoint_url).verify(f"{head}.{forged}.{signature}") is None
    with pytest.raises(ConfigError, match="should look like"):
        CognitoUsers("nopool", "x")
