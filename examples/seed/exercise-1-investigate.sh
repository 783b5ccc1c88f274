# Check which version is actually running in production
curl -s "https://app-contoso-payments.azurewebsites.net/api/version"
# Check deployment slot status
az webapp show \
--name app-contoso-payments \
--resource-group rg-contoso-prod \
--query "state"
# Check if traffic routing is sending traffic to staging instead
az webapp traffic-routing show \
--name app-contoso-payments \
--resource-group rg-contoso-prod
