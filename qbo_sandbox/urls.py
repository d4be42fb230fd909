from django.urls import path, re_path

from . import api, attachments, oauth, signin, ui

app_name = "qbo_sandbox"

urlpatterns = [
    path(".well-known/openid_configuration", oauth.discovery, name="discovery"),
    path(".well-known/openid_configuration/", oauth.discovery),
    path("oauth2/authorize", oauth.authorize, name="authorize"),
    path("oauth2/v1/tokens/bearer", oauth.token, name="token"),
    path("oauth2/v1/tokens/revoke", oauth.revoke, name="revoke"),
    path("op/v1/jwks", oauth.jwks, name="jwks"),
    path("v1/openid_connect/userinfo", oauth.userinfo, name="userinfo"),
    re_path(r"^v3/company/(?P<realm>[^/]+)/(?P<rest>.*)$", api.v3, name="v3"),
    path("api/faults/<str:realm>", ui.faults_api, name="faults_api"),
    # An Attachable's TempDownloadUri (on Intuit a signed link to its file store).
    path("files/<str:token>", attachments.download, name="attachment_download"),
    path("usage/<str:realm>/", ui.usage_api, name="usage_api"),
    # The QuickBooks user's sign-in, asked by the consent page and every UI page below.
    path("signin", signin.signin, name="signin"),
    path("signout", signin.signout, name="signout"),
    path("", ui.company_list, name="home"),
    path("company/<str:realm>/", ui.company_detail, name="company"),
    path("company/<str:realm>/<str:entity_type>/", ui.entity_list, name="entity_list"),
    path("company/<str:realm>/<str:entity_type>/<int:qbo_id>/", ui.entity_detail, name="entity"),
    path(
        "company/<str:realm>/customer/<int:qbo_id>/edit",
        ui.customer_edit,
        name="customer_edit",
    ),
    path(
        "company/<str:realm>/invoice/<int:qbo_id>/receive-payment",
        ui.invoice_receive_payment,
        name="invoice_receive_payment",
    ),
    path("company/<str:realm>/bill/<int:qbo_id>/pay", ui.bill_pay, name="bill_pay"),
    *(
        path(
            f"company/<str:realm>/{segment}/<int:qbo_id>/{action}",
            ui.TXN_VIEWS[f"{segment}_{action}"],
            name=f"{segment}_{action}",
        )
        for segment, action in ui.TXN_ACTIONS
    ),
]
