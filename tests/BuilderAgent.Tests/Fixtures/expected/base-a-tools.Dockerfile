# Tools on base-a
FROM registry.test:5000/fx-base-a:testing

COPY shared/etc/a.conf /etc/tools/
COPY shared/etc/b.conf /etc/tools/
RUN chmod 0644 /etc/tools/*
COPY base-a/tools/motd /etc/motd
RUN echo "tools=base-a/tools" >> /etc/fixture-stamps