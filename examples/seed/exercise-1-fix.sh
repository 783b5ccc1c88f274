# Clear all traffic routing rules
az webapp traffic-routing clear \
--name app-contoso-payments \
--resource-group rg-contoso-prod
