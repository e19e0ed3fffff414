FROM registry.test:5000/fx-base-a-tools:testing
    RUN echo 1:one >> /etc/extra
RUN echo 2:two >> /etc/extra
RUN echo 3:three >> /etc/extra
RUN echo "extra=yes" >> /etc/fixture-stamps