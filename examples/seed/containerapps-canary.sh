# Deploy new revision with 0% traffic initially
az containerapp update \
--name ca-contoso-payments \
--resource-group rg-contoso-prod \
--image acrcontosoprod.azurecr.io/payment-service:v2.4.1 \
--revision-suffix hotfix-v241
# Route 10% to new revision
az containerapp ingress traffic set \
--name ca-contoso-payments \
--resource-group rg-contoso-prod \
--revision-weight "ca-contoso-payments--hotfix-v241=10" \
--revision-weight "ca-contoso-payments--stable=90"
# If errors detected, immediately route all traffic back
az containerapp ingress traffic set \
--name ca-contoso-payments \
--resource-group rg-contoso-prod \
--revision-weight "ca-contoso-payments--stable=100"
