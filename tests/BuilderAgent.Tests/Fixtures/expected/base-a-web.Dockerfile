# Web on base-a
FROM registry.test:5000/fx-base-a:testing
COPY shared/etc/a.conf /etc/fixture/
RUN chmod 0600 /etc/fixture/*
EXPOSE 8000